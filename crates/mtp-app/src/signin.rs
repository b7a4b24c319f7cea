//! Sign-ins in progress, per service, and the ways back from the browser that are not the
//! deep link:
//!
//! * a **loopback redirect** (RFC 8252 §7.3): when a service's redirect URI is
//!   `http://127.0.0.1:<port>/<path>`, the app listens there for one sign-in only, accepts
//!   one request carrying the expected `state`, answers "you can close this tab" and closes;
//! * **Panoramax's claim** (PROTOCOLS §4.2): a generated token is claimed in the browser
//!   while the app polls `GET /api/users/me` with it.
//!
//! What the card shows ([`SignInStatus`]) lives here, so that a failure (wrong state, port
//! in use, abandoned, KartaView's refusal, a claim that never came) stays on the card until
//! the user acts, whatever the web view re-renders.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use mtp_core::Destination;
use mtp_core::deeplink::DeepLink;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{App, AppError, AppResult, WeakApp};

/// How long each way back waits. Tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct SignInTimeouts {
    /// A loopback listener closes when nothing came back within this (default 10 min).
    pub loopback: Duration,
    /// Panoramax: stop waiting for the claim after this (default 10 min).
    pub claim: Duration,
    /// Panoramax: how often `GET /api/users/me` is asked (default 2 s, as panoramax-cli).
    pub claim_poll: Duration,
}

impl Default for SignInTimeouts {
    fn default() -> Self {
        SignInTimeouts {
            loopback: Duration::from_secs(10 * 60),
            claim: Duration::from_secs(10 * 60),
            claim_poll: Duration::from_secs(2),
        }
    }
}

/// The loopback address the card suggests when the deep link does not come back (JOSM's
/// port for Mapillary; any free port works if registered with the service).
pub const SUGGESTED_LOOPBACK: &str = "http://127.0.0.1:8763/callback";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInPhase {
    /// The browser page is open; waiting for the service to send the user back (or, for
    /// Panoramax, for the token to be claimed).
    Waiting,
    /// It failed or was abandoned: `message` says why and what to do.
    Failed,
}

/// What a service's card shows about its current sign-in. Holds no secret.
#[derive(Debug, Clone, Serialize)]
pub struct SignInStatus {
    pub phase: SignInPhase,
    /// The page opened in the browser (authorize page, or Panoramax's claim page).
    pub page_url: Option<String>,
    /// Where the browser comes back (deep link or loopback); `None` for Panoramax.
    pub redirect_uri: Option<String>,
    /// The app is listening on `redirect_uri` right now.
    pub listening: bool,
    pub browser_opened: bool,
    pub browser_error: Option<String>,
    /// Why it failed, in words for the user.
    pub message: Option<String>,
    /// KartaView refused the OpenStreetMap sign-in: offer to paste a KartaView token.
    pub offer_token: bool,
    /// An OpenStreetMap token is kept: KartaView can be asked again without the browser.
    pub can_retry: bool,
    /// KartaView refused the OpenStreetMap app in the settings: offer to sign in through
    /// KartaView's own app instead (a code to paste).
    pub offer_kartaview_app: bool,
    /// Waiting for the code OpenStreetMap shows after approving (KartaView's app has no
    /// redirect back to the app): the card asks for it.
    pub wants_code: bool,
}

impl SignInStatus {
    pub(crate) fn failed(message: impl Into<String>) -> SignInStatus {
        SignInStatus {
            phase: SignInPhase::Failed,
            page_url: None,
            redirect_uri: None,
            listening: false,
            browser_opened: false,
            browser_error: None,
            message: Some(message.into()),
            offer_token: false,
            can_retry: false,
            offer_kartaview_app: false,
            wants_code: false,
        }
    }

    /// Waiting in the browser on `page_url`.
    pub(crate) fn waiting(page_url: String, redirect_uri: Option<String>) -> SignInStatus {
        SignInStatus {
            phase: SignInPhase::Waiting,
            page_url: Some(page_url),
            redirect_uri,
            message: None,
            ..SignInStatus::failed("")
        }
    }
}

struct Entry {
    generation: u64,
    status: SignInStatus,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The sign-ins of every service (in memory: a restart forgets them, and the listeners and
/// polls they had die with the process).
#[derive(Default)]
pub(crate) struct SignIns {
    entries: Mutex<HashMap<Destination, Entry>>,
    next_generation: std::sync::atomic::AtomicU64,
    timeouts: Mutex<SignInTimeouts>,
}

impl SignIns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Destination, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn timeouts(&self) -> SignInTimeouts {
        *self.timeouts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn status(&self, service: Destination) -> Option<SignInStatus> {
        self.lock().get(&service).map(|e| e.status.clone())
    }

    /// Starts a new sign-in of `service`, ending (and closing the listener of) any earlier
    /// one. Returns its generation: later updates from its task name it.
    pub(crate) fn begin(&self, service: Destination, status: SignInStatus) -> u64 {
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let old = self.lock().insert(
            service,
            Entry {
                generation,
                status,
                task: None,
            },
        );
        if let Some(task) = old.and_then(|e| e.task) {
            task.abort();
        }
        generation
    }

    pub(crate) fn attach(
        &self,
        service: Destination,
        generation: u64,
        task: tokio::task::JoinHandle<()>,
    ) {
        let mut entries = self.lock();
        match entries.get_mut(&service) {
            Some(e) if e.generation == generation => e.task = Some(task),
            _ => task.abort(),
        }
    }

    /// Lets the sign-in's own task finish what it does (it is about to end the sign-in
    /// itself), so that ending it does not cancel the task mid-way.
    pub(crate) fn detach(&self, service: Destination, generation: u64) {
        if let Some(e) = self.lock().get_mut(&service)
            && e.generation == generation
        {
            e.task = None;
        }
    }

    /// Ends the sign-in of `service` and waits until its listener is closed (its port free)
    /// or its poll stopped.
    pub(crate) async fn stop(&self, service: Destination) {
        let task = self.lock().remove(&service).and_then(|e| e.task);
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Replaces the status, if `generation` is still the current sign-in (`None` = any).
    pub(crate) fn set(&self, service: Destination, generation: Option<u64>, status: SignInStatus) {
        let mut entries = self.lock();
        match entries.get_mut(&service) {
            Some(e) if generation.is_none_or(|g| g == e.generation) => {
                e.status = status;
                if e.status.phase == SignInPhase::Failed
                    && let Some(task) = e.task.take()
                    && generation.is_none()
                {
                    task.abort();
                }
            }
            Some(_) => {}
            None if generation.is_none() => {
                entries.insert(
                    service,
                    Entry {
                        generation: self
                            .next_generation
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                        status,
                        task: None,
                    },
                );
            }
            None => {}
        }
    }

    /// Forgets the sign-in of `service` (done, or cancelled), stopping its listener or poll.
    /// With a generation, only if it is still the current one.
    pub(crate) fn end(&self, service: Destination, generation: Option<u64>) {
        let mut entries = self.lock();
        if let Some(e) = entries.get(&service)
            && generation.is_none_or(|g| g == e.generation)
            && let Some(e) = entries.remove(&service)
            && generation.is_none()
            && let Some(task) = e.task
        {
            task.abort();
        }
    }
}

/// A loopback redirect URI, checked: `http://127.0.0.1:<port>/<path>` (or `[::1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackUri {
    pub addr: std::net::SocketAddr,
    pub path: String,
    pub uri: String,
}

/// `Ok(None)` for a URI that is not `http://` (the deep link); `Err` for an `http://` one
/// that cannot be a loopback redirect.
pub fn loopback_uri(uri: &str) -> Result<Option<LoopbackUri>, String> {
    let Ok(url) = url::Url::parse(uri.trim()) else {
        return Err(format!(
            "{uri:?} is not an address: use the app link {} or http://127.0.0.1:<port>/<path>.",
            crate::config::DEEP_LINK_REDIRECT
        ));
    };
    if url.scheme() != "http" {
        return Ok(None);
    }
    let ip: std::net::IpAddr = match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => ip.into(),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => ip.into(),
        Some(url::Host::Domain("localhost")) => {
            return Err(format!(
                "{uri} uses \"localhost\": use http://127.0.0.1 instead (RFC 8252 §8.3: localhost may resolve elsewhere), and register that address with the service."
            ));
        }
        _ => {
            return Err(format!(
                "{uri} is not on this computer: a web redirect must be http://127.0.0.1:<port>/<path>."
            ));
        }
    };
    let Some(port) = url.port() else {
        return Err(format!(
            "{uri} has no port: write one (e.g. {SUGGESTED_LOOPBACK}), the same as registered with the service."
        ));
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{uri} must not carry a query or a fragment."));
    }
    Ok(Some(LoopbackUri {
        addr: std::net::SocketAddr::new(ip, port),
        path: url.path().to_string(),
        uri: url.to_string(),
    }))
}

/// Binds the loopback address for one sign-in, with the message the card shows when it
/// cannot.
pub(crate) async fn bind(service: Destination, lb: &LoopbackUri) -> AppResult<TcpListener> {
    // The previous sign-in's listener on this port may take a moment to be gone; a port
    // another program holds stays taken for the whole second.
    let mut result = TcpListener::bind(lb.addr).await;
    for _ in 0..20 {
        match &result {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                result = TcpListener::bind(lb.addr).await;
            }
            _ => break,
        }
    }
    result.map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "port {} is in use by another program. Close that program, or choose another port below and register the new address with {}",
                lb.addr.port(),
                service.label()
            )
        } else {
            format!("{e}")
        };
        AppError::new(
            "port_in_use",
            format!(
                "Cannot listen on {} for the {} sign-in: {why}.",
                lb.uri,
                service.label()
            ),
        )
    })
}

/// Longest request head the listener reads.
const MAX_HEAD: usize = 16 * 1024;

/// Serves one sign-in's loopback redirect until the expected request came, a request with
/// a wrong state came, or `timeout` passed; then the listener closes.
///
/// Each connection's request is read in its own task (a browser may open a connection it
/// sends nothing on for a while, e.g. a preconnect), and requests are then handled one at
/// a time, in the order they arrive.
pub(crate) async fn serve_loopback(
    app: WeakApp,
    listener: TcpListener,
    lb: LoopbackUri,
    service: Destination,
    state: String,
    generation: u64,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(TcpStream, Result<String, &'static str>)>(8);
    let mut readers = tokio::task::JoinSet::new();
    loop {
        while readers.try_join_next().is_some() {}
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                if let Some(app) = app.upgrade() {
                    app.sign_ins().set(
                        service,
                        Some(generation),
                        SignInStatus::failed(format!(
                            "{} sign-in abandoned: nothing came back to {} within {}, so MTP Desktop stopped listening there. Click Integrate to try again.",
                            service.label(),
                            lb.uri,
                            human(timeout)
                        )),
                    );
                    app.emit(crate::AppEvent::AccountsChanged);
                }
                return;
            }
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) if readers.len() < MAX_CONNECTIONS => {
                    let tx = tx.clone();
                    readers.spawn(async move {
                        let target = read_request_target(&mut stream).await;
                        let _ = tx.send((stream, target)).await;
                    });
                }
                Ok(_) => tracing::warn!("loopback sign-in: too many connections, one dropped"),
                Err(e) => tracing::warn!("loopback accept failed: {e}"),
            },
            Some((mut stream, target)) = rx.recv() => {
                let target = match target {
                    Ok(t) => t,
                    Err(status) => {
                        respond(&mut stream, status, "Bad request", "<p>This is MTP Desktop's sign-in address; the request could not be read.</p>").await;
                        continue;
                    }
                };
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                if path != lb.path {
                    respond(
                        &mut stream,
                        "404 Not Found",
                        "Not found",
                        "<p>This is MTP Desktop's sign-in address; nothing else lives here.</p>",
                    )
                    .await;
                    continue;
                }
                if query.is_empty() {
                    // An implicit grant (Map the Paths Web) puts its reply in the fragment,
                    // which the browser does not send: move it into the query and come back.
                    respond(&mut stream, "200 OK", "Finishing sign-in…", BOUNCE).await;
                    continue;
                }
                let Some(app) = app.upgrade() else { return };
                handle_reply(&app, &mut stream, &lb, service, &state, generation, query).await;
                return;
            }
        }
    }
}

/// Connections read at the same time, at most.
const MAX_CONNECTIONS: usize = 16;

/// The one request at the sign-in path that carries a reply: accepted if its `state` is
/// the expected one, else refused (and the sign-in ends either way).
async fn handle_reply(
    app: &App,
    stream: &mut TcpStream,
    lb: &LoopbackUri,
    service: Destination,
    state: &str,
    generation: u64,
    query: &str,
) {
    let link = DeepLink::from_params(query, "");
    let state_ok = link
        .as_ref()
        .ok()
        .and_then(DeepLink::state)
        .is_some_and(|s| constant_time_eq(s.as_bytes(), state.as_bytes()));
    let link = match link {
        Ok(link) if state_ok => link,
        _ => {
            let message = format!(
                "Refused the {} sign-in reply that came back to {}: its state does not match the sign-in this app started (an old browser tab, or another program). Nothing was changed. Click Integrate to try again.",
                service.label(),
                lb.uri
            );
            respond(
                stream,
                "400 Bad Request",
                "Sign-in refused",
                &format!("<p>{}</p>", escape(&message)),
            )
            .await;
            app.sign_ins()
                .set(service, Some(generation), SignInStatus::failed(message));
            app.emit(crate::AppEvent::AccountsChanged);
            return;
        }
    };
    // Finishing ends this sign-in: it must not cancel this very task before it answers.
    app.sign_ins().detach(service, generation);
    // Map the Paths Web reads its token from a fragment: hand it over as one.
    let raw = format!("{}#{query}", lb.uri);
    let outcome = app.finish_redirect(link, &raw).await;
    let (status, title, body) = match &outcome {
        Ok(o) if o.accepted => (
            "200 OK",
            "Signed in",
            format!(
                "<p>{}</p><p><strong>You can close this tab</strong> and return to MTP Desktop.</p>",
                escape(&o.message)
            ),
        ),
        Ok(o) => (
            "200 OK",
            "Sign-in failed",
            format!(
                "<p>{}</p><p>Return to MTP Desktop: its Integrations screen says what to do.</p>",
                escape(&o.message)
            ),
        ),
        Err(e) => (
            "500 Internal Server Error",
            "Sign-in failed",
            format!("<p>{}</p>", escape(&e.message)),
        ),
    };
    respond(stream, status, title, &body).await;
}

/// Reads the request line and headers; returns the request target of a `GET`.
async fn read_request_target(stream: &mut TcpStream) -> Result<String, &'static str> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let read = async {
        loop {
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(());
            }
            if buf.len() > MAX_HEAD {
                return Err("431 Request Header Fields Too Large");
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err("400 Bad Request"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| "408 Request Timeout")??;
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Ok(target.to_string()),
        _ => Err("405 Method Not Allowed"),
    }
}

async fn respond(stream: &mut TcpStream, status: &str, title: &str, body: &str) {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>MTP Desktop — {t}</title>\
         <style>body{{font:16px system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
        html.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(html.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Moves an implicit grant's fragment into the query (the listener cannot see fragments).
const BOUNCE: &str = "<p id=\"m\">Finishing the sign-in…</p><script>\
if (location.hash.length > 1) { location.replace(location.pathname + '?' + location.hash.slice(1)); }\
else { document.getElementById('m').textContent = 'Nothing came back from the sign-in. Return to MTP Desktop and click Integrate again.'; }\
</script>";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// "10 minutes", "2 seconds"… for messages.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{} minutes", s / 60)
    } else if s >= 2 {
        format!("{s} seconds")
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl App {
    pub(crate) fn sign_ins(&self) -> &SignIns {
        &self.inner.sign_ins
    }

    /// Shortens (tests) or lengthens how long sign-ins wait.
    pub fn set_sign_in_timeouts(&self, timeouts: SignInTimeouts) {
        *self
            .inner
            .sign_ins
            .timeouts
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = timeouts;
    }

    /// The current sign-in of `service`, as its card shows it.
    pub fn sign_in_status(&self, service: Destination) -> Option<SignInStatus> {
        self.sign_ins().status(service)
    }

    /// Stops waiting for `service`'s sign-in: its loopback listener closes, its claim poll
    /// stops, its pending attempts are forgotten (a reply that still comes back through the
    /// deep link is refused), and the card forgets the failure it showed.
    pub async fn cancel_sign_in(&self, service: Destination) -> AppResult<()> {
        self.sign_ins().stop(service).await;
        self.store().delete_oauth_attempts(service).await?;
        self.emit(crate::AppEvent::AccountsChanged);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_uris_are_checked() {
        let lb = loopback_uri("http://127.0.0.1:8763/callback")
            .unwrap()
            .unwrap();
        assert_eq!(lb.addr.port(), 8763);
        assert_eq!(lb.path, "/callback");
        assert!(loopback_uri("http://[::1]:9000/cb").unwrap().is_some());
        assert_eq!(loopback_uri("app.mtp.desktop://app").unwrap(), None);
        for bad in [
            "http://localhost:8763/cb",
            "http://127.0.0.1/cb",
            "http://example.com:80/cb",
            "http://127.0.0.1:8763/cb?x=1",
            "not a uri",
        ] {
            assert!(loopback_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(human(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
    }
}
