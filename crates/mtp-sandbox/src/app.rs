//! The shared application state and the per-endpoint fault layer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::MethodRouter;
use serde_json::json;
use url::Url;

use crate::auth::{AuthStore, Service, TokenKind};
use crate::faults::{ENDPOINTS, FaultAction, Faults};
use crate::persist::Persist;
use crate::record::{Recorder, ReqCtx};
use crate::server::SandboxConfig;
use crate::state::lock;
use crate::world::World;
use crate::{kartaview, mapillary, mtpw, panoramax};

pub(crate) struct App {
    pub cfg: SandboxConfig,
    /// Origin without a trailing slash, e.g. `http://127.0.0.1:41234`.
    pub origin: String,
    pub faults: Faults,
    pub recorder: Recorder,
    pub auth: Mutex<AuthStore>,
    pub mly: Mutex<mapillary::MlyState>,
    pub kv: Mutex<kartaview::KvState>,
    pub pnx: Mutex<panoramax::PnxState>,
    pub mtpw: Mutex<mtpw::MtpwState>,
    /// Where the state is saved (`None` = in memory only).
    pub persist: Option<Persist>,
    /// The seeded world (never saved: regenerated from the config at every start).
    pub world: Arc<World>,
}

pub(crate) type AppRef = Arc<App>;

impl App {
    pub fn new(cfg: SandboxConfig, base: &Url, persist: Option<Persist>) -> App {
        let mtpw_import = cfg.mtpw_import;
        let world = Arc::new(World::generate(&cfg.world));
        App {
            world,
            cfg,
            origin: base.as_str().trim_end_matches('/').to_owned(),
            faults: Faults::default(),
            recorder: Recorder::default(),
            auth: Mutex::new(AuthStore::default()),
            mly: Mutex::new(mapillary::MlyState::default()),
            kv: Mutex::new(kartaview::KvState::default()),
            pnx: Mutex::new(panoramax::PnxState::default()),
            mtpw: Mutex::new(mtpw::MtpwState::with_import_mode(mtpw_import)),
            persist,
        }
    }

    /// Notes that the state changed: it is saved shortly (if it is saved at all).
    pub fn touch(&self) {
        if let Some(p) = &self.persist {
            p.touch();
        }
    }

    /// An absolute URL on the sandbox origin.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin, path)
    }

    /// Issues an access token (and for Mapillary, the lifetime from the config).
    pub fn issue_access(&self, service: Service, user: usize, client_id: &str) -> String {
        let lifetime = match service {
            Service::Mapillary => Some(self.cfg.token_lifetime),
            _ => None,
        };
        let token = lock(&self.auth).issue(
            &self.faults,
            service,
            TokenKind::Access,
            user,
            client_id,
            lifetime,
        );
        self.touch();
        token
    }

    /// The processing delay split into `parts` equal steps.
    pub fn step(&self, parts: u32) -> Duration {
        self.cfg.processing_delay / parts.max(1)
    }
}

/// Wraps one endpoint's method router with its name and the fault layer.
pub(crate) fn ep(
    app: &AppRef,
    name: &'static str,
    mr: MethodRouter<AppRef>,
) -> MethodRouter<AppRef> {
    debug_assert!(
        ENDPOINTS.contains(&name),
        "endpoint {name} not in ENDPOINTS"
    );
    mr.route_layer(axum::middleware::from_fn_with_state(
        (app.clone(), name),
        fault_layer,
    ))
}

async fn fault_layer(
    State((app, name)): State<(AppRef, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let ctx = req.extensions().get::<Arc<ReqCtx>>().cloned();
    if let Some(c) = &ctx {
        c.set_endpoint(name);
    }
    let (service, endpoint) = name.split_once('.').unwrap_or((name, ""));
    let decision = app.faults.decide(service, endpoint);
    if !decision.latency.is_zero() {
        if let Some(c) = &ctx {
            c.set_fault(format!("latency {}ms", decision.latency.as_millis()));
        }
        tokio::time::sleep(decision.latency).await;
    }
    let req = match decision.throttle {
        Some(rate) => {
            if let Some(c) = &ctx {
                c.set_fault(format!("throttle {rate} B/s"));
            }
            req.map(|body| crate::body::throttled(body, rate))
        }
        None => req,
    };
    let mut req = req;
    for link in decision.links {
        if let Some(c) = &ctx {
            c.set_fault("shared link".to_owned());
        }
        req = req.map(|body| crate::body::over_link(body, link));
    }
    let Some(action) = decision.action else {
        if mapillary::counts_against_rate_limit(name) && !lock(&app.mly).take_graph_request() {
            if let Some(c) = &ctx {
                c.set_fault("over the app's rate limit".to_owned());
            }
            return mapillary::rate_limited();
        }
        return next.run(req).await;
    };
    let label = match &action {
        FaultAction::Status { status, .. } => format!("status {status}"),
        FaultAction::RateLimit { .. } => "rate_limit".to_owned(),
        FaultAction::Reset { after_bytes } => format!("reset after {after_bytes} bytes"),
        FaultAction::Latency { delay } => format!("latency {}ms", delay.as_millis()),
        FaultAction::Throttle { bytes_per_sec } => format!("throttle {bytes_per_sec} B/s"),
        FaultAction::Link { bytes_per_sec } => format!("shared link {bytes_per_sec} B/s"),
    };
    if let Some(c) = &ctx {
        c.set_fault(label);
    }
    match action {
        FaultAction::Reset { after_bytes } => {
            if let Some(c) = &ctx {
                c.arm_reset(after_bytes);
            }
            next.run(req).await
        }
        FaultAction::Status {
            status,
            retry_after,
            error_type,
        } => fault_response(name, status, retry_after, None, error_type.as_deref()),
        FaultAction::RateLimit {
            retry_after,
            backoff_ms,
        } => fault_response(name, 429, retry_after, backoff_ms, None),
        FaultAction::Latency { .. } | FaultAction::Throttle { .. } | FaultAction::Link { .. } => {
            next.run(req).await
        }
    }
}

/// The error a service answers for an injected status, in that service's format.
fn fault_response(
    name: &str,
    status: u16,
    retry_after: Option<u64>,
    backoff_ms: Option<u64>,
    error_type: Option<&str>,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let reason = code.canonical_reason().unwrap_or("Error");
    let service = name.split('.').next().unwrap_or("");
    let mut resp = match service {
        "mapillary" => {
            // The upload host answers in its `debug_info` shape (mapillary_tools reads
            // `retriable`, `type` and `backoff` there); the Graph API in Facebook's
            // `{"error":{"message","type","code"}}` shape, with no `debug_info`.
            let upload_host = matches!(name, "mapillary.upload" | "mapillary.offset");
            let body = if upload_host {
                let (retriable, ty, message) = match (status, error_type) {
                    (_, Some(ty)) => (false, ty, format!("{reason} (sandbox fault, {ty})")),
                    (status, None) => match status {
                    412 => (true, "OffsetInvalidError", "Request starting offset is invalid".to_owned()),
                    429 => (false, "RequestRateLimitedError", "Request rate limit has been exceeded".to_owned()),
                    401 | 403 => (false, "NotAuthorizedError", format!("{reason} (sandbox fault)")),
                    s if s >= 500 => (true, "InternalServerError", format!("{status} {reason} (sandbox fault)")),
                    _ => (false, "InvalidRequestError", format!("{reason} (sandbox fault)")),
                    },
                };
                let mut b = json!({"debug_info": {"retriable": retriable, "type": ty, "message": message}});
                if let Some(ms) = backoff_ms.filter(|_| status == 429) {
                    b["backoff"] = json!(ms);
                }
                b
            } else if status == 429 || error_type == Some("RequestRateLimitedError") {
                json!({"error": {"message": "(#4) Application request limit reached",
                    "type": "OAuthException", "is_transient": true, "code": 4,
                    "fbtrace_id": crate::ids::base62(11)}})
            } else if status >= 500 {
                json!({"error": {"message": "An unexpected error has occurred. Please retry your request later.",
                    "type": "OAuthException", "is_transient": true, "code": 2,
                    "fbtrace_id": crate::ids::base62(11)}})
            } else {
                let (ty, code) = if status == 401 || status == 403 || error_type == Some("NotAuthorizedError") {
                    ("OAuthException", 190)
                } else {
                    ("GraphMethodException", 100)
                };
                json!({"error": {"message": format!("{reason} (sandbox fault)"), "type": ty, "code": code,
                    "fbtrace_id": crate::ids::base62(11)}})
            };
            json_response(code, &body)
        }
        "kartaview" => {
            let v2 = name.ends_with("_v2");
            let api_code = match status {
                401 => "401".to_owned(),
                s if s >= 500 => "690".to_owned(),
                s => s.to_string(),
            };
            let api_code = if v2 {
                json!(api_code.parse::<u16>().unwrap_or(690))
            } else {
                json!(api_code)
            };
            json_response(
                code,
                &json!({"status": {"apiCode": api_code, "apiMessage": format!("{reason} (sandbox fault)"),
                                    "httpCode": status, "httpMessage": reason}}),
            )
        }
        "panoramax" => json_response(
            code,
            &json!({"message": format!("{reason} (sandbox fault)"), "status_code": status}),
        ),
        "mtpw" if status >= 500 => (
            code,
            Html(format!("<!doctype html><html><head><title>Server Error ({status})</title></head><body><h1>Server Error ({status})</h1><p></p></body></html>")),
        )
            .into_response(),
        "mtpw" if status == 429 => json_response(
            code,
            &json!({"detail": format!("Request was throttled. Expected available in {} seconds.", retry_after.unwrap_or(1))}),
        ),
        "mtpw" => json_response(
            code,
            &json!({"detail": format!("{reason} (sandbox fault)")}),
        ),
        "osm" => json_response(
            code,
            &json!({"error": if status >= 500 {"server_error"} else {"invalid_request"},
                    "error_description": format!("{reason} (sandbox fault)")}),
        ),
        _ => (code, reason.to_owned()).into_response(),
    };
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A `302 Found` (or `303 See Other` after a POST) to `location`.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (status, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "bad redirect").into_response(),
    }
}

/// The credential of an `Authorization: <scheme> <credential>` header, for any of `schemes`
/// (case-insensitive).
pub(crate) fn auth_credential<'a>(headers: &'a HeaderMap, schemes: &[&str]) -> Option<&'a str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, cred) = v.split_once(' ')?;
    schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        .then(|| cred.trim())
        .filter(|c| !c.is_empty())
}

/// Whether a redirect URI is one the sandbox apps accept: the app's deep link or a loopback
/// HTTP listener (any port and path).
pub(crate) fn redirect_allowed(uri: &str) -> bool {
    let Ok(u) = Url::parse(uri) else {
        return false;
    };
    match u.scheme() {
        "app.mtp.desktop" => true,
        "http" => matches!(
            u.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        ),
        _ => false,
    }
}

/// Appends query parameters to a redirect URI.
pub(crate) fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

/// Sets the fragment of a redirect URI to the given parameters (implicit grant).
pub(crate) fn with_fragment(uri: &str, params: &[(&str, &str)]) -> String {
    let frag = params
        .iter()
        .fold(
            url::form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(k, v);
                s
            },
        )
        .finish();
    match Url::parse(uri) {
        Ok(mut u) => {
            u.set_fragment(Some(&frag));
            u.to_string()
        }
        Err(_) => format!("{uri}#{frag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_rules() {
        assert!(redirect_allowed("app.mtp.desktop://app"));
        assert!(redirect_allowed("http://127.0.0.1:8763/callback"));
        assert!(redirect_allowed("http://localhost/cb"));
        assert!(!redirect_allowed("https://evil.example/cb"));
        assert!(!redirect_allowed("not a url"));
        assert_eq!(
            with_query("app.mtp.desktop://app", &[("code", "a b"), ("state", "s")]),
            "app.mtp.desktop://app?code=a+b&state=s"
        );
        assert_eq!(
            with_fragment("app.mtp.desktop://app", &[("access_token", "t")]),
            "app.mtp.desktop://app#access_token=t"
        );
    }
}
