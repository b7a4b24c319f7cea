//! Logging in: authorize URLs, the redirect back to the app, and token exchange.
//!
//! | Service | Grant | PKCE | Token endpoint auth |
//! |---|---|---|---|
//! | Mapillary | code | no (see [`MapillaryOAuth::authorize`]) | `Authorization: OAuth <client secret>` |
//! | OpenStreetMap (for KartaView) | code | S256 | client secret in the form body |
//! | Map the Paths Web | implicit (`response_type=token`) | n/a | n/a |
//!
//! Every attempt carries a random `state`, kept in a [`PendingAuthorization`] that the app
//! stores and checks against the deep link before anything else.

use std::sync::Arc;

use futures::future::BoxFuture;
use mtp_core::Destination;
use mtp_core::clock::{Millis, SharedClock, SystemClock};
use mtp_core::secret::Secret;
use oauth2::basic::{BasicClient, BasicTokenResponse, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;
use url::Url;

use crate::config::{KartaViewConfig, MapillaryConfig, MtpwConfig};
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, retry_after_header};
use crate::http::{self, body_text, str_field};
use crate::kartaview::{self, KartaViewAccount};

/// Scopes KartaView's OSM login asks for (upload-scripts since 2024-06, PROTOCOLS §3.1).
pub const OSM_SCOPES: [&str; 2] = ["openid", "read_prefs"];

/// JOSM refreshes a Mapillary token 7 days before it expires (PROTOCOLS §2.1).
pub const REFRESH_MARGIN_MS: Millis = 7 * 24 * 60 * 60 * 1000;

/// The tokens a login yields. Secrets stay typed so they never reach a log or the web view.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSet {
    pub access_token: Secret<String>,
    pub refresh_token: Option<Secret<String>>,
    /// Absolute expiry (epoch ms), computed from `expires_in` with the injected clock.
    pub expires_at_ms: Option<Millis>,
}

impl TokenSet {
    /// True once we are within [`REFRESH_MARGIN_MS`] of expiry. Tokens without an expiry
    /// (OSM, pasted KartaView tokens) never need a refresh.
    pub fn should_refresh(&self, now_ms: Millis) -> bool {
        self.expires_at_ms
            .is_some_and(|at| now_ms >= at.saturating_sub(REFRESH_MARGIN_MS))
    }

    pub fn is_expired(&self, now_ms: Millis) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms >= at)
    }
}

/// One login attempt in flight. The app persists it (SQLite) until the deep link
/// `app.mtp.desktop://app?code&state` (or `#access_token…&state` for MTPW) arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAuthorization {
    pub service: Destination,
    /// Random, unguessable; the redirect must carry it back unchanged.
    pub state: String,
    /// PKCE S256 verifier, for services that accept PKCE.
    pub pkce_verifier: Option<Secret<String>>,
    /// Open this in the user's browser.
    pub authorize_url: Url,
}

impl PendingAuthorization {
    /// Refuses a redirect whose `state` is missing or differs: it was not started by us
    /// (login CSRF would link someone else's account).
    pub fn check_state(&self, returned: Option<&str>) -> Result<(), ProviderError> {
        match returned {
            Some(returned) if constant_time_eq(returned.as_bytes(), self.state.as_bytes()) => {
                Ok(())
            }
            Some(_) => Err(ProviderError::auth(
                self.service,
                "the login reply does not match the login we started (state mismatch); start the login again",
            )),
            None => Err(ProviderError::auth(
                self.service,
                "the login reply carries no state, so it cannot be trusted; start the login again",
            )),
        }
    }

    /// Reads `?code&state` (or `?error&error_description`) from the redirect URL, checking
    /// the state first.
    pub fn code_from_redirect(&self, redirect: &Url) -> Result<Secret<String>, ProviderError> {
        let params: Vec<(String, String)> = redirect
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(error) = get("error") {
            return Err(refused(self.service, error, get("error_description")));
        }
        self.check_state(get("state"))?;
        get("code")
            .filter(|c| !c.is_empty())
            .map(|c| Secret::new(c.to_string()))
            .ok_or_else(|| ProviderError::auth(self.service, "the login reply has no code"))
    }
}

fn refused(service: Destination, error: &str, description: Option<&str>) -> ProviderError {
    let message = match description.filter(|d| !d.is_empty()) {
        Some(description) => format!("the login was refused: {error}: {description}"),
        None => format!("the login was refused: {error}"),
    };
    ProviderError::auth(service, message)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type TokenClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn redirect_url(service: Destination, redirect_uri: &str) -> Result<RedirectUrl, ProviderError> {
    RedirectUrl::new(redirect_uri.to_string()).map_err(|e| {
        ProviderError::invalid(
            service,
            format!("invalid redirect URI {redirect_uri:?}: {e}"),
        )
    })
}

fn token_client(
    service: Destination,
    client_id: &str,
    client_secret: Option<&Secret<String>>,
    authorize_url: &Url,
    token_url: &Url,
    redirect_uri: &str,
) -> Result<TokenClient, ProviderError> {
    let client = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_auth_uri(AuthUrl::from_url(authorize_url.clone()))
        .set_token_uri(TokenUrl::from_url(token_url.clone()))
        .set_redirect_uri(redirect_url(service, redirect_uri)?)
        // client_id (and the secret, if any) in the form body: what Mapillary expects, and
        // accepted by OpenStreetMap (Doorkeeper takes client_secret_post).
        .set_auth_type(AuthType::RequestBody);
    Ok(match client_secret.filter(|s| !s.expose().is_empty()) {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.expose().clone())),
        None => client,
    })
}

/// The HTTP client handed to the oauth2 crate: our reqwest client, plus
///
/// * an optional `Authorization` header (Mapillary wants `OAuth <client secret>`, which the
///   crate cannot express);
/// * our own classification of non-200 replies, so that a 5xx retries and a refused code
///   asks for a new login, with the server's message verbatim (the crate would only keep
///   RFC 6749 error bodies, and Mapillary's are Graph-style);
/// * a JSON content type on replies whose body is JSON whatever the header says (the crate
///   refuses anything but `application/json`, and Graph-style servers have answered
///   `text/javascript`), and a `Permanent` error carrying the body when a 200 is not JSON.
fn token_http(
    service: Destination,
    http: reqwest::Client,
    authorization: Option<HeaderValue>,
    clock: SharedClock,
) -> impl Fn(HttpRequest) -> BoxFuture<'static, Result<HttpResponse, ProviderError>> {
    move |request: HttpRequest| {
        let http = http.clone();
        let authorization = authorization.clone();
        let clock = clock.clone();
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request)
                .map_err(|e| ProviderError::network(service, &e))?;
            if let Some(value) = authorization {
                request
                    .headers_mut()
                    .insert(reqwest::header::AUTHORIZATION, value);
            }
            let response = http
                .execute(request)
                .await
                .map_err(|e| ProviderError::network(service, &e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(|e| ProviderError::network(service, &e))?;
            if status != StatusCode::OK {
                return Err(classify_token_error(
                    service,
                    status,
                    &headers,
                    &body,
                    clock.now_ms(),
                ));
            }
            let is_json = serde_json::from_slice::<Value>(&body).is_ok();
            if !is_json {
                // The crate would drop the body; keep it for the user.
                return Err(ProviderError::unexpected_reply(
                    service,
                    status.as_u16(),
                    "the token reply is not JSON",
                    &body,
                ));
            }
            let mut builder = oauth2::http::Response::builder().status(status.as_u16());
            for (name, value) in &headers {
                if name != CONTENT_TYPE {
                    builder = builder.header(name.as_str(), value.as_bytes());
                }
            }
            builder = builder.header(CONTENT_TYPE.as_str(), "application/json");
            builder.body(body.to_vec()).map_err(|e| {
                ProviderError::unexpected_reply(
                    service,
                    status.as_u16(),
                    format!("unreadable token reply headers: {e}"),
                    &body,
                )
            })
        })
    }
}

/// A non-200 reply from a token endpoint. A refused code or refresh token (400/401/403)
/// means the user must log in again; 429 and 5xx are transient.
pub fn classify_token_error(
    service: Destination,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: Millis,
) -> ProviderError {
    if service == Destination::Mapillary {
        let error = crate::mapillary::classify_error(status, headers, body, now_ms);
        if error.kind() == ErrorKind::Permanent && matches!(status.as_u16(), 400 | 401 | 403) {
            return ProviderError::http(
                service,
                ErrorKind::Auth,
                status.as_u16(),
                error.code().map(str::to_string),
                error.message(),
                error.body().map(str::to_string),
            );
        }
        return error;
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref().and_then(|j| str_field(j.get(name)));
    let nested = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get("error"))
            .and_then(|e| str_field(e.get(name)))
    };
    let code = field("error").or_else(|| nested("type"));
    let message = field("error_description")
        .or_else(|| nested("message"))
        .or_else(|| field("message"))
        .or_else(|| code.clone());
    let after = retry_after_header(headers, now_ms);
    let kind = match status.as_u16() {
        429 => ErrorKind::Retry {
            after: after.or(Some(DEFAULT_RATE_LIMIT_DELAY)),
        },
        500..=599 => ErrorKind::Retry { after },
        400 | 401 | 403 => ErrorKind::Auth,
        _ => ErrorKind::Permanent,
    };
    let (message, body) = match message {
        Some(message) => (message, None),
        None => ("the token request failed".to_string(), body_text(body)),
    };
    ProviderError::http(service, kind, status.as_u16(), code, message, body)
}

fn token_error(
    service: Destination,
    error: RequestTokenError<ProviderError, oauth2::basic::BasicErrorResponse>,
) -> ProviderError {
    match error {
        RequestTokenError::Request(error) => error,
        RequestTokenError::ServerResponse(response) => refused(
            service,
            response.error().as_ref(),
            response.error_description().map(String::as_str),
        ),
        RequestTokenError::Parse(error, body) => ProviderError::unexpected_reply(
            service,
            200,
            format!("unreadable token reply ({error})"),
            &body,
        ),
        RequestTokenError::Other(message) => ProviderError::unexpected_reply(
            service,
            200,
            format!("unusable token reply ({message})"),
            b"",
        ),
    }
}

/// Turns a token reply into a [`TokenSet`], refusing anything but a bearer token
/// (PROTOCOLS §2.1; the comparison is case-insensitive, as the crate lower-cases it).
fn token_set(
    service: Destination,
    reply: &BasicTokenResponse,
    previous_refresh: Option<&Secret<String>>,
    now_ms: Millis,
) -> Result<TokenSet, ProviderError> {
    if *reply.token_type() != BasicTokenType::Bearer {
        return Err(ProviderError::invalid(
            service,
            format!(
                "the token reply has token_type {:?}, but only bearer tokens are supported",
                reply.token_type().as_ref()
            ),
        ));
    }
    let expires_at_ms = reply
        .expires_in()
        .map(|d| now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    Ok(TokenSet {
        access_token: Secret::new(reply.access_token().secret().clone()),
        refresh_token: reply
            .refresh_token()
            .map(|t| Secret::new(t.secret().clone()))
            .or_else(|| previous_refresh.cloned()),
        expires_at_ms,
    })
}

/// Mapillary's OAuth code flow (PROTOCOLS §2.1).
#[derive(Clone)]
pub struct MapillaryOAuth {
    http: reqwest::Client,
    config: MapillaryConfig,
    clock: SharedClock,
}

impl MapillaryOAuth {
    pub fn new(http: reqwest::Client, config: MapillaryConfig) -> Self {
        MapillaryOAuth {
            http,
            config,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn client(&self) -> Result<TokenClient, ProviderError> {
        let token_url = http::endpoint(Destination::Mapillary, &self.config.graph_url, &["token"])?;
        // No secret here: Mapillary takes it in the `Authorization` header, not the body.
        token_client(
            Destination::Mapillary,
            &self.config.client_id,
            None,
            &self.config.authorize_url,
            &token_url,
            &self.config.redirect_uri,
        )
    }

    fn authorization_header(&self) -> Result<HeaderValue, ProviderError> {
        let mut value =
            HeaderValue::from_str(&format!("OAuth {}", self.config.client_secret.expose()))
                .map_err(|_| {
                    ProviderError::invalid(
                        Destination::Mapillary,
                        "the Mapillary client secret contains characters not allowed in a header",
                    )
                })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `GET {connect}?response_type=code&client_id&state&redirect_uri&scope`.
    ///
    /// No PKCE: Mapillary's verified flow (PROTOCOLS §2.1) lists exact parameters and
    /// authenticates the exchange with the client secret; nothing suggests it checks a
    /// code verifier, so a challenge would add no protection, and an unknown parameter is
    /// an untestable risk on a login page we cannot observe. `state` is what protects the
    /// callback.
    pub fn authorize(&self) -> Result<PendingAuthorization, ProviderError> {
        let client = self.client()?;
        let mut request = client.authorize_url(CsrfToken::new_random);
        if !self.config.scope.trim().is_empty() {
            request = request.add_scope(Scope::new(self.config.scope.trim().to_string()));
        }
        let (authorize_url, state) = request.url();
        Ok(PendingAuthorization {
            service: Destination::Mapillary,
            state: state.secret().clone(),
            pkce_verifier: None,
            authorize_url,
        })
    }

    /// `POST {graph}/token` with `Authorization: OAuth <client secret>` and form
    /// `grant_type=authorization_code&client_id&code&redirect_uri`.
    pub async fn exchange_code(
        &self,
        pending: &PendingAuthorization,
        code: &Secret<String>,
    ) -> Result<TokenSet, ProviderError> {
        let client = self.client()?;
        let http = token_http(
            Destination::Mapillary,
            self.http.clone(),
            Some(self.authorization_header()?),
            self.clock.clone(),
        );
        let mut request = client.exchange_code(AuthorizationCode::new(code.expose().clone()));
        if let Some(verifier) = &pending.pkce_verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().clone()));
        }
        let reply = request
            .request_async(&http)
            .await
            .map_err(|e| token_error(Destination::Mapillary, e))?;
        token_set(Destination::Mapillary, &reply, None, self.clock.now_ms())
    }

    /// `grant_type=refresh_token&client_id&refresh_token`, same endpoint and header. With
    /// no distinct refresh token we send the current access token, as JOSM does
    /// (PROTOCOLS §2.1 ⚠️). A refused refresh is an `Auth` error: ask for a new login and
    /// keep the queue.
    pub async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, ProviderError> {
        let client = self.client()?;
        let http = token_http(
            Destination::Mapillary,
            self.http.clone(),
            Some(self.authorization_header()?),
            self.clock.clone(),
        );
        let refresh = tokens
            .refresh_token
            .as_ref()
            .unwrap_or(&tokens.access_token)
            .expose()
            .clone();
        let refresh = RefreshToken::new(refresh);
        let reply = client
            .exchange_refresh_token(&refresh)
            .request_async(&http)
            .await
            .map_err(|e| token_error(Destination::Mapillary, e))?;
        token_set(
            Destination::Mapillary,
            &reply,
            tokens.refresh_token.as_ref(),
            self.clock.now_ms(),
        )
    }
}

/// OpenStreetMap's OAuth2 code flow, the first half of a KartaView login (PROTOCOLS §3.1).
#[derive(Clone)]
pub struct OsmOAuth {
    http: reqwest::Client,
    config: KartaViewConfig,
    clock: SharedClock,
}

impl OsmOAuth {
    pub fn new(http: reqwest::Client, config: KartaViewConfig) -> Self {
        OsmOAuth {
            http,
            config,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn client(&self) -> Result<TokenClient, ProviderError> {
        token_client(
            Destination::Kartaview,
            &self.config.osm_client_id,
            Some(&self.config.osm_client_secret),
            &self.config.osm_authorize_url,
            &self.config.osm_token_url,
            &self.config.redirect_uri,
        )
    }

    /// Authorize URL with `scope=openid read_prefs`, a random state and a PKCE S256
    /// challenge (OpenStreetMap supports PKCE; it protects the code in the deep link).
    pub fn authorize(&self) -> Result<PendingAuthorization, ProviderError> {
        let client = self.client()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(OSM_SCOPES.iter().map(|s| Scope::new((*s).to_string())))
            .set_pkce_challenge(challenge)
            .url();
        Ok(PendingAuthorization {
            service: Destination::Kartaview,
            state: state.secret().clone(),
            pkce_verifier: Some(Secret::new(verifier.secret().clone())),
            authorize_url,
        })
    }

    /// Exchanges the code (with the PKCE verifier) for an OSM access token.
    pub async fn exchange_code(
        &self,
        pending: &PendingAuthorization,
        code: &Secret<String>,
    ) -> Result<TokenSet, ProviderError> {
        let client = self.client()?;
        let http = token_http(
            Destination::Kartaview,
            self.http.clone(),
            None,
            self.clock.clone(),
        );
        let mut request = client.exchange_code(AuthorizationCode::new(code.expose().clone()));
        if let Some(verifier) = &pending.pkce_verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().clone()));
        }
        let reply = request
            .request_async(&http)
            .await
            .map_err(|e| token_error(Destination::Kartaview, e))?;
        token_set(Destination::Kartaview, &reply, None, self.clock.now_ms())
    }

    /// The whole second half of a KartaView login: code → OSM token → KartaView token
    /// (`client_auth`). The OSM tokens are returned too, so that a `client_auth` failure
    /// can be retried without a new browser round trip.
    pub async fn login_kartaview(
        &self,
        pending: &PendingAuthorization,
        code: &Secret<String>,
    ) -> Result<(TokenSet, KartaViewAccount), ProviderError> {
        let osm = self.exchange_code(pending, code).await?;
        let account = kartaview::client_auth(
            &self.http,
            &self.config.api_url,
            &osm.access_token,
            &self.config.osm_client_secret,
            self.clock.as_ref(),
        )
        .await?;
        Ok((osm, account))
    }
}

/// Map the Paths Web's implicit grant (PROTOCOLS §5): the token comes back in the
/// redirect's fragment, so there is no exchange.
#[derive(Debug, Clone)]
pub struct MtpwOAuth {
    config: MtpwConfig,
}

impl MtpwOAuth {
    pub fn new(config: MtpwConfig) -> Self {
        MtpwOAuth { config }
    }

    /// `GET {base}/accounts/authorize/?response_type=token&client_id&state&redirect_uri`.
    pub fn authorize(&self) -> Result<PendingAuthorization, ProviderError> {
        let authorize = http::endpoint(
            Destination::Mtpw,
            &self.config.base_url,
            &["accounts", "authorize", ""],
        )?;
        let client = BasicClient::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(authorize))
            .set_redirect_uri(redirect_url(Destination::Mtpw, &self.config.redirect_uri)?);
        let (authorize_url, state) = client
            .authorize_url(CsrfToken::new_random)
            .use_implicit_flow()
            .url();
        Ok(PendingAuthorization {
            service: Destination::Mtpw,
            state: state.secret().clone(),
            pkce_verifier: None,
            authorize_url,
        })
    }

    /// Reads `#access_token=…&token_type=Bearer&expires_in=…&state=…` from the redirect.
    /// The state must come back and match; an `error` in the fragment is a refusal.
    pub fn token_from_redirect(
        &self,
        pending: &PendingAuthorization,
        redirect: &Url,
        now_ms: Millis,
    ) -> Result<TokenSet, ProviderError> {
        let service = Destination::Mtpw;
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(redirect.fragment().unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(error) = get("error") {
            return Err(refused(service, error, get("error_description")));
        }
        pending.check_state(get("state"))?;
        if let Some(token_type) = get("token_type")
            && !token_type.eq_ignore_ascii_case("bearer")
        {
            return Err(ProviderError::invalid(
                service,
                format!(
                    "the login reply has token_type {token_type:?}, but only bearer tokens are supported"
                ),
            ));
        }
        let access_token = get("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ProviderError::auth(service, "the login reply has no access token"))?;
        let expires_at_ms = get("expires_in")
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map(|secs| now_ms.saturating_add(secs.saturating_mul(1000)));
        Ok(TokenSet {
            access_token: Secret::new(access_token.to_string()),
            refresh_token: None,
            expires_at_ms,
        })
    }
}
