//! The server: configuration, start/stop, the accept loop (one task per connection, which a
//! reset fault can kill) and the recording layer every request goes through.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt as _;
use url::Url;

use crate::app::{App, AppRef};
use crate::auth::Service;
use crate::body::{SharedBody, drain};
use crate::faults::Faults;
use crate::html::{escape, page};
use crate::persist::{self, Persist};
use crate::record::RecordedRequest;
use crate::state::{SandboxState, lock};
use crate::{admin, kartaview, mapillary, mtpw, osm, panoramax};

/// How the sandbox runs.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Address to bind (default 127.0.0.1).
    pub host: IpAddr,
    /// Port (0 = any free port).
    pub port: u16,
    /// How long server-side processing takes (Mapillary clusters, KartaView sequences,
    /// Panoramax upload sets, MTPW publication). Default 3 s; 0 = instant.
    pub processing_delay: Duration,
    /// Lifetime of Mapillary access tokens (default 60 days).
    pub token_lifetime: Duration,
    /// Authorize pages redirect at once, as the first sandbox account, without a click.
    pub auto_approve: bool,
    /// Panoramax accepts uploads without a token (GeoVisio `API_FORCE_AUTH_ON_UPLOAD=false`);
    /// they land on the first sandbox account. Default false.
    pub panoramax_anonymous_uploads: bool,
    /// Receive buffer of every connection (`SO_RCVBUF`, which also stops the kernel from
    /// growing it), `None` = the system's. Loopback buffers hold megabytes: whatever a
    /// client wrote before it died still arrives. A small buffer with a `throttle_kbps`
    /// fault makes a slow link, so a client killed mid-upload leaves a partial body.
    pub recv_buffer: Option<u32>,
    /// How Map the Paths Web's import answers a Mapillary link (default: as today's
    /// server, HTTP 500; see [`crate::MtpwImportMode`]). Can be changed while running.
    pub mtpw_import: crate::MtpwImportMode,
    /// Folder where the emulators keep their state, so that a restart resumes (tokens,
    /// uploads, partial ones included, processing, …; see `state.json` and `blobs/` in
    /// it). Created if missing; an unreadable state is moved aside and the sandbox starts
    /// empty. `None` (the default) = in memory only.
    pub state_dir: Option<PathBuf>,
    /// The seeded world of images the emulators' searches find besides uploads
    /// (`MTP_SANDBOX_WORLD`, `MTP_SANDBOX_WORLD_SEED`; see [`crate::World`]). Generated at
    /// start and never saved. Default: [`crate::DEFAULT_WORLD_IMAGES`] images in four cities.
    pub world: crate::WorldSpec,
    /// Mapillary's `/images` refuses a `bbox` larger than this many square degrees, as the
    /// Graph API refuses heavy queries (`MTP_SANDBOX_MLY_MAX_BBOX_SQDEG`, default 0.01).
    pub mapillary_max_bbox_sqdeg: f64,
}

/// Environment variables [`SandboxConfig::apply_env`] reads.
pub const WORLD_ENV: &str = "MTP_SANDBOX_WORLD";
pub const WORLD_SEED_ENV: &str = "MTP_SANDBOX_WORLD_SEED";
pub const MLY_MAX_BBOX_ENV: &str = "MTP_SANDBOX_MLY_MAX_BBOX_SQDEG";

impl SandboxConfig {
    /// Applies the emulator knobs set in the environment (`lookup` is usually
    /// `|k| std::env::var(k).ok()`): `MTP_SANDBOX_WORLD` (`default`, `none`, `<n>` or
    /// `<n>@<lat>,<lon>,<km>`), `MTP_SANDBOX_WORLD_SEED` (a number) and
    /// `MTP_SANDBOX_MLY_MAX_BBOX_SQDEG` (square degrees). Unset or empty = unchanged.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = get(WORLD_ENV) {
            let seed = self.world.seed;
            self.world = v.parse().map_err(|e| format!("{WORLD_ENV}: {e}"))?;
            self.world.seed = seed;
        }
        if let Some(v) = get(WORLD_SEED_ENV) {
            self.world.seed = v
                .parse()
                .map_err(|_| format!("{WORLD_SEED_ENV}: {v:?} is not a number"))?;
        }
        if let Some(v) = get(MLY_MAX_BBOX_ENV) {
            self.mapillary_max_bbox_sqdeg = v
                .parse::<f64>()
                .ok()
                .filter(|x| *x > 0.0)
                .ok_or_else(|| format!("{MLY_MAX_BBOX_ENV}: {v:?} is not a positive number"))?;
        }
        Ok(())
    }
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            processing_delay: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(60 * 24 * 3600),
            auto_approve: false,
            panoramax_anonymous_uploads: false,
            recv_buffer: None,
            mtpw_import: crate::MtpwImportMode::default(),
            state_dir: None,
            world: crate::WorldSpec::default(),
            mapillary_max_bbox_sqdeg: 0.01,
        }
    }
}

/// Where each emulated service lives (no trailing slashes).
#[derive(Clone, Debug, Serialize)]
pub struct SandboxUrls {
    pub base: Url,
    pub mapillary_authorize: Url,
    /// `MAPILLARY_GRAPH_API_ENDPOINT`.
    pub mapillary_graph: Url,
    /// `POST {graph}/token`.
    pub mapillary_token: Url,
    /// `MAPILLARY_UPLOAD_ENDPOINT`.
    pub mapillary_upload: Url,
    pub osm_authorize: Url,
    pub osm_token: Url,
    pub kartaview_api: Url,
    pub panoramax_instance: Url,
    pub mtpw_base: Url,
    /// The sandbox control plane (`/sandbox/requests`, `/sandbox/faults`, `/sandbox/tokens`).
    pub sandbox_admin: Url,
}

impl SandboxUrls {
    pub(crate) fn new(origin: &str) -> SandboxUrls {
        let u = |p: &str| {
            Url::parse(&format!("{origin}{p}")).unwrap_or_else(|e| panic!("bad url {p}: {e}"))
        };
        SandboxUrls {
            base: u("/"),
            mapillary_authorize: u("/mapillary/connect"),
            mapillary_graph: u("/mapillary/graph"),
            mapillary_token: u("/mapillary/graph/token"),
            mapillary_upload: u("/mapillary/upload"),
            osm_authorize: u("/osm/oauth2/authorize"),
            osm_token: u("/osm/oauth2/token"),
            kartaview_api: u("/kartaview"),
            panoramax_instance: u("/panoramax"),
            mtpw_base: u("/mtpw"),
            sandbox_admin: u("/sandbox"),
        }
    }
}

/// Lets a request's middleware drop the connection it arrived on.
#[derive(Clone)]
pub(crate) struct ConnCtl(Arc<Notify>);

impl ConnCtl {
    fn kill(&self) {
        self.0.notify_one();
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    app: AppRef,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    /// Saves the state after changes (with a `state_dir`).
    saver: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish()
    }
}

impl Sandbox {
    /// Binds and starts serving every emulator. With a [`SandboxConfig::state_dir`], first
    /// loads what a previous run saved there.
    pub async fn start(cfg: SandboxConfig) -> std::io::Result<Sandbox> {
        let persist = cfg.state_dir.as_deref().map(Persist::open).transpose()?;
        let listener = listen(&cfg)?;
        let addr = listener.local_addr()?;
        let base = Url::parse(&format!("http://{addr}/")).map_err(std::io::Error::other)?;
        let app: AppRef = Arc::new(App::new(cfg, &base, persist));
        let saver = app.persist.as_ref().map(|p| {
            p.load(&app);
            tokio::spawn(persist::run_saver(app.clone()))
        });
        let router = build_router(&app);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, router, stop_rx));
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox {
            app,
            addr,
            stop,
            task: Some(task),
            saver,
        })
    }

    /// `http://<host>:<port>/`.
    pub fn base_url(&self) -> Url {
        SandboxUrls::new(&self.app.origin).base
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn urls(&self) -> SandboxUrls {
        SandboxUrls::new(&self.app.origin)
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.app.cfg
    }

    pub fn faults(&self) -> &Faults {
        &self.app.faults
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.app.recorder.requests()
    }

    pub fn clear_requests(&self) {
        self.app.recorder.clear();
    }

    /// How Map the Paths Web's import answers a Mapillary link from now on.
    pub fn set_mtpw_import(&self, mode: crate::MtpwImportMode) {
        lock(&self.app.mtpw).set_import_mode(mode);
    }

    pub fn mtpw_import(&self) -> crate::MtpwImportMode {
        lock(&self.app.mtpw).import_mode()
    }

    /// The seeded world the searches find besides uploads (for tests computing the
    /// expected answer).
    pub fn world(&self) -> &crate::World {
        &self.app.world
    }

    /// Read access to the emulators' data.
    pub fn state(&self) -> SandboxState {
        SandboxState {
            app: self.app.clone(),
        }
    }

    /// Issues an access token for sandbox account `user` (see [`SandboxState::issue_token`]).
    pub fn issue_token(&self, service: Service, user: usize) -> String {
        self.state().issue_token(service, user)
    }

    /// Stops accepting, drops every open connection and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.final_save();
    }

    /// Stops the background saver and saves the state one last time.
    fn final_save(&mut self) {
        if let Some(saver) = self.saver.take() {
            saver.abort();
            if let Some(p) = &self.app.persist
                && let Err(e) = p.save(&self.app)
            {
                tracing::warn!(error = %e, "could not save the sandbox state");
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.final_save();
    }
}

/// The listening socket (accepted connections inherit its receive buffer).
fn listen(cfg: &SandboxConfig) -> std::io::Result<TcpListener> {
    let addr = SocketAddr::new(cfg.host, cfg.port);
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    if let Some(size) = cfg.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

fn build_router(app: &AppRef) -> Router {
    Router::new()
        .route("/", get(index))
        .nest("/mapillary", mapillary::router(app))
        .nest("/osm", osm::router(app))
        .nest("/kartaview", kartaview::router(app))
        // The instance's web viewer is at its root with a trailing slash
        // (`{instance}/?pic=…`), which a nested `/` route does not match.
        .route("/panoramax/", get(panoramax::viewer))
        .nest("/panoramax", panoramax::router(app))
        .nest("/mtpw", mtpw::router(app))
        .nest("/sandbox", admin::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            record_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            persist_layer,
        ))
        .with_state(app.clone())
}

async fn accept_loop(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        while conns.try_join_next().is_some() {}
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let kill = Arc::new(Notify::new());
        let ctl = ConnCtl(kill.clone());
        let router = router.clone();
        let svc = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ctl.clone());
            router.clone().oneshot(req)
        });
        conns.spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Records the request (except `/sandbox/…`), routes its body through the recorder, drains what the handler
/// left unread (real servers read the whole request before answering, and clients that
/// stream a body would otherwise see a broken pipe instead of the reply), and carries out
/// an armed connection reset.
async fn record_layer(State(app): State<AppRef>, req: Request, next: Next) -> Response {
    // The control plane is the tests' own channel, not traffic to an emulated service.
    let path = req.uri().path();
    if path == "/sandbox" || path.starts_with("/sandbox/") {
        return next.run(req).await;
    }
    let ctx = app.recorder.begin(req.method(), req.uri(), req.headers());
    // If the connection dies before the reply (the client was killed), hyper drops this
    // future: the guard still records what the body delivered.
    let mut unfinished = Unfinished(Some(ctx.clone()));
    let conn = req.extensions().get::<ConnCtl>().cloned();
    let (mut parts, body) = req.into_parts();
    lock(&ctx.body).inner = Some(body.into_data_stream());
    parts.extensions.insert(ctx.clone());
    let req = Request::from_parts(parts, Body::from_stream(SharedBody(ctx.clone())));
    let resp = next.run(req).await;
    ctx.set_status(resp.status().as_u16());
    drain(ctx.clone()).await;
    if ctx.reset_armed() {
        ctx.finish(None).await;
        unfinished.0 = None;
        if let Some(conn) = conn {
            conn.kill();
            // The connection task drops this future together with the connection.
            return std::future::pending::<Response>().await;
        }
        return StatusCode::BAD_GATEWAY.into_response();
    }
    ctx.finish(Some(resp.status().as_u16())).await;
    unfinished.0 = None;
    resp
}

/// Marks the state changed once a request that may have changed it is answered (or
/// dropped): every method but `GET`/`HEAD`/`OPTIONS`, and the `GET`s of the authorize and
/// claim pages (which issue codes or claim tokens when auto-approving).
async fn persist_layer(State(app): State<AppRef>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let may_change = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || path.contains("/authorize")
        || path.contains("/connect")
        || path.ends_with("/claim");
    if app.persist.is_none() || !may_change {
        return next.run(req).await;
    }
    let _touch = Touch(app.clone());
    next.run(req).await
}

/// Marks the state changed when dropped.
struct Touch(AppRef);

impl Drop for Touch {
    fn drop(&mut self) {
        self.0.touch();
    }
}

/// Records a request whose handling was dropped midway (see [`ReqCtx::finish_dropped`]).
struct Unfinished(Option<Arc<crate::record::ReqCtx>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(ctx) = self.0.take() {
            ctx.finish_dropped();
        }
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"error":"not found in the MTP sandbox"}"#,
    )
        .into_response()
}

async fn index(State(app): State<AppRef>) -> Html<String> {
    let urls = SandboxUrls::new(&app.origin);
    let rows = [
        ("Mapillary authorize", &urls.mapillary_authorize),
        ("Mapillary Graph API", &urls.mapillary_graph),
        ("Mapillary upload host", &urls.mapillary_upload),
        ("OSM OAuth2 authorize", &urls.osm_authorize),
        ("OSM OAuth2 token", &urls.osm_token),
        ("KartaView API", &urls.kartaview_api),
        ("Panoramax instance", &urls.panoramax_instance),
        ("Map the Paths Web", &urls.mtpw_base),
        ("Sandbox control", &urls.sandbox_admin),
    ]
    .iter()
    .map(|(n, u)| {
        format!(
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            escape(n),
            escape(u.as_str())
        )
    })
    .collect::<String>();
    Html(page(
        "MTP sandbox",
        &format!(
            "<table>{rows}</table><p>Recorded requests: <a href=\"/sandbox/requests\">/sandbox/requests</a></p>"
        ),
    ))
}
