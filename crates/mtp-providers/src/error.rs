//! Errors that say what to do next.
//!
//! Every failed call becomes one [`ProviderError`] whose [`ErrorKind`] tells the pipeline
//! whether to retry (and how long to wait at least), to stop and show the user why, to ask
//! the user to reconnect the account, or (Mapillary only) to re-read the upload offset.
//! The classification lives next to each service's client (`mapillary::classify_error`,
//! `kartaview::interpret_reply`, …) because every service signals failure differently;
//! this module holds the shared shape, the `Retry-After` parser and the backoff schedule.

use std::fmt;
use std::time::Duration;

use mtp_core::Destination;
use mtp_core::clock::Millis;

/// Used when a service says "too many requests" without saying for how long
/// (PROTOCOLS §2.3: "else 10 s").
pub const DEFAULT_RATE_LIMIT_DELAY: Duration = Duration::from_secs(10);

/// Bodies longer than this are cut in `Display` (the full text stays in [`ProviderError::body`]).
const DISPLAY_BODY_LIMIT: usize = 4 * 1024;

/// What the caller should do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient (network, timeout, 5xx, rate limit): try again. `after` is the delay the
    /// server asked for (`Retry-After`, Mapillary's JSON `backoff`); wait at least that long.
    Retry { after: Option<Duration> },
    /// Retrying cannot help (bad input, rejected file, unexpected reply): stop this item and
    /// show the message, which carries the service's own words.
    Permanent,
    /// The token is missing, expired, revoked or lacks a permission: ask the user to
    /// reconnect the account, and keep the queue.
    Auth,
    /// Mapillary 412 `OffsetInvalidError`: the offset we sent is not the server's. Read the
    /// offset again and retry at once, with no backoff.
    OffsetInvalid,
}

impl ErrorKind {
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Retry { .. } | ErrorKind::OffsetInvalid)
    }
}

/// A failed call to one of the remote services.
///
/// Cloneable and comparable so that the pipeline can store it as a job's last error and
/// tests can compare it; the transport error chain is flattened into `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    service: Destination,
    kind: ErrorKind,
    status: Option<u16>,
    code: Option<String>,
    message: String,
    body: Option<String>,
    /// Set by a client that recognised the service's own "does not exist" reply (see
    /// [`ProviderError::is_not_found`]).
    not_found: bool,
    /// No connection was made: the request never reached the service.
    unsent: bool,
}

impl std::error::Error for ProviderError {}

impl ProviderError {
    /// A reply from the service. `message` should be the service's own words when it gave
    /// any; `body` the raw reply when it is opaque (not JSON, or JSON we could not read a
    /// message from), so the user sees exactly what the server said (PROTOCOLS §6).
    pub fn http(
        service: Destination,
        kind: ErrorKind,
        status: u16,
        code: Option<String>,
        message: impl Into<String>,
        body: Option<String>,
    ) -> Self {
        ProviderError {
            service,
            kind,
            status: Some(status),
            code,
            message: message.into(),
            body,
            not_found: false,
            unsent: false,
        }
    }

    /// The request never got a reply (DNS, refused, reset, timeout). Always worth retrying,
    /// except for requests we could not even build, which will fail the same way again.
    pub fn network(service: Destination, error: &reqwest::Error) -> Self {
        let kind = if error.is_builder() || error.is_redirect() {
            ErrorKind::Permanent
        } else {
            ErrorKind::Retry { after: None }
        };
        let unsent = error.is_connect() && !error.is_timeout();
        let what = if error.is_timeout() {
            "the request timed out"
        } else if error.is_connect() {
            "could not connect"
        } else {
            "the connection failed"
        };
        ProviderError {
            service,
            kind,
            status: None,
            code: None,
            message: format!("{what}: {}", error_chain(error)),
            body: None,
            not_found: false,
            unsent,
        }
    }

    /// A successful status with a reply we cannot use (missing field, not JSON). The
    /// request may well have had an effect, so retrying blindly is wrong: show the body.
    pub fn unexpected_reply(
        service: Destination,
        status: u16,
        what: impl Into<String>,
        body: &[u8],
    ) -> Self {
        ProviderError {
            service,
            kind: ErrorKind::Permanent,
            status: Some(status),
            code: None,
            message: what.into(),
            body: Some(String::from_utf8_lossy(body).into_owned()),
            not_found: false,
            unsent: false,
        }
    }

    /// A problem on our side before anything was sent (bad configured URL, invalid input).
    pub fn invalid(service: Destination, message: impl Into<String>) -> Self {
        ProviderError {
            service,
            kind: ErrorKind::Permanent,
            status: None,
            code: None,
            message: message.into(),
            body: None,
            not_found: false,
            unsent: false,
        }
    }

    /// The user has to log in again (refused authorization, state mismatch, failed refresh).
    pub fn auth(service: Destination, message: impl Into<String>) -> Self {
        ProviderError {
            service,
            kind: ErrorKind::Auth,
            status: None,
            code: None,
            message: message.into(),
            body: None,
            not_found: false,
            unsent: false,
        }
    }

    pub fn service(&self) -> Destination {
        self.service
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// HTTP status of the reply, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The service's machine-readable error code: Mapillary `debug_info.type`, KartaView
    /// `apiCode`, Panoramax `details.error`.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The service's message verbatim, or our description of what went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The full reply body when it was opaque.
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    /// The reply's body as a person reads it: an HTML page (a proxy's error page, a
    /// maintenance notice) as its text, whitespace collapsed, at most 4 KiB; `None` when
    /// there is nothing to show.
    pub fn body_for_display(&self) -> Option<String> {
        let body = self
            .body
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())?;
        let text = if looks_like_html(body) {
            html_text(body)
        } else {
            body.to_string()
        };
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if text.len() > DISPLAY_BODY_LIMIT {
            let cut = floor_char_boundary(text, DISPLAY_BODY_LIMIT);
            return Some(format!(
                "{}… ({} more bytes)",
                &text[..cut],
                text.len() - cut
            ));
        }
        Some(text.to_string())
    }

    /// The service says the thing addressed does not exist, or not any more: HTTP 404, or a
    /// service's own "unknown id" reply where the client recognised one (KartaView answers
    /// `/1.0/sequence/remove/` and `/1.0/photo/remove/` for an unknown or removed id with
    /// HTTP 400 `apiCode` 612, "argument out of range"). For a delete this means "already
    /// gone", i.e. done. The [`ErrorKind`] is unchanged (`Permanent`).
    pub fn is_not_found(&self) -> bool {
        self.not_found || self.status == Some(404)
    }

    /// Whether the call certainly did nothing: the service answered with an error status,
    /// or no connection was ever made. `false` when the reply was lost (a timeout, a
    /// connection cut once the request was out), or was a success we could not read: then
    /// the service may have acted on it.
    pub fn certainly_did_nothing(&self) -> bool {
        self.unsent || self.status.is_some_and(|s| s >= 400)
    }

    /// The service refuses this account this action: HTTP 403 (Panoramax: not the owner, or
    /// a token that was never claimed or was revoked; KartaView `apiCode` 618 "not
    /// allowed", e.g. another user's sequence). A delete or an edit shows it as "not
    /// yours" rather than asking to reconnect.
    pub fn is_forbidden(&self) -> bool {
        self.status == Some(403)
            || (self.service == Destination::Kartaview
                && self.code.as_deref() == Some("apiCode 618"))
    }

    /// Marks the error as the service's "does not exist" ([`ProviderError::is_not_found`]).
    pub(crate) fn into_not_found(mut self) -> Self {
        self.not_found = true;
        self
    }

    fn advice(&self) -> String {
        let service = self.service.label();
        match self.kind {
            ErrorKind::Retry { after: Some(after) } => {
                format!("Will retry automatically in {} s.", after.as_secs().max(1))
            }
            ErrorKind::Retry { after: None } if self.status.is_none() => {
                "Will retry automatically when the network is back.".to_string()
            }
            ErrorKind::Retry { after: None } => {
                format!("{service} is busy or failing; will retry automatically.")
            }
            ErrorKind::Permanent => {
                "Not retried automatically: fix the cause, then retry this item.".to_string()
            }
            ErrorKind::Auth => {
                format!(
                    "Reconnect your {service} account on Integrations; queued uploads are kept."
                )
            }
            ErrorKind::OffsetInvalid => {
                "The upload resumes at once from the server's offset.".to_string()
            }
        }
    }
}

impl ProviderError {
    /// The error for someone acting now (signing in, connecting an account, pasting a
    /// token): the same words as [`fmt::Display`], but the advice is what to do now, not
    /// what a queued job will do (nothing retries a sign-in by itself).
    pub fn words_for_now(&self) -> String {
        let service = self.service.label();
        let advice = match self.kind {
            ErrorKind::Retry { after: Some(after) } => format!(
                "{service} asks to wait {} s: try again then.",
                after.as_secs().max(1)
            ),
            ErrorKind::Retry { after: None } if self.status.is_none() => {
                "Check the connection, then try again.".to_string()
            }
            ErrorKind::Retry { after: None } => {
                format!("{service} is busy or failing: try again in a moment.")
            }
            ErrorKind::Auth => {
                format!("{service} refused it: check the token or sign in again.")
            }
            ErrorKind::Permanent | ErrorKind::OffsetInvalid => String::new(),
        };
        let mut words = String::new();
        let _ = self.write_facts(&mut words);
        if !advice.is_empty() {
            words.push_str(". ");
            words.push_str(&advice);
        }
        words
    }

    /// "<service>: <message> (HTTP <status>, <code>). Reply: <body>", without advice.
    fn write_facts(&self, f: &mut impl fmt::Write) -> fmt::Result {
        write!(f, "{}: {}", self.service.label(), self.message)?;
        match (self.status, &self.code) {
            (Some(status), Some(code)) => write!(f, " (HTTP {status}, {code})")?,
            (Some(status), None) => write!(f, " (HTTP {status})")?,
            (None, Some(code)) => write!(f, " ({code})")?,
            (None, None) => {}
        }
        if let Some(body) = self.body_for_display() {
            write!(f, ". Reply: {body}")?;
        }
        Ok(())
    }
}

fn looks_like_html(body: &str) -> bool {
    let head = body[..floor_char_boundary(body, 256.min(body.len()))].to_ascii_lowercase();
    head.starts_with('<')
        && (head.contains("<html") || head.contains("<!doctype") || head.contains("</"))
}

/// The text of an HTML page: scripts and styles dropped, tags removed, the common entities
/// decoded, whitespace collapsed.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<script") || rest.starts_with("<style") {
            let close = if rest.starts_with("<script") {
                "</script>"
            } else {
                "</style>"
            };
            i += rest.find(close).map_or(rest.len(), |end| end + close.len());
            out.push(' ');
        } else if rest.starts_with('<') {
            i += rest.find('>').map_or(rest.len(), |end| end + 1);
            out.push(' ');
        } else {
            let next = rest.find('<').unwrap_or(rest.len());
            out.push_str(&html[i..i + next]);
            i += next;
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_facts(f)?;
        write!(f, ". {}", self.advice())
    }
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// `reqwest::Error`'s own `Display` hides the cause ("error sending request for url"); the
/// cause ("Connection refused") is what tells the user their network is down.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP date (IMF-fixdate, or any RFC
/// 2822 date) turned into the time left from `now_ms`. A date in the past means "now".
pub fn parse_retry_after(value: &str, now_ms: Millis) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let fixdate = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, fixdate)
        .map(time::PrimitiveDateTime::assume_utc)
        .or_else(|_| {
            time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
        })
        .ok()?;
    let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?;
    let left = at_ms.saturating_sub(now_ms).max(0);
    Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
}

/// The `Retry-After` header of a reply, if present and readable.
pub(crate) fn retry_after_header(
    headers: &reqwest::header::HeaderMap,
    now_ms: Millis,
) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now_ms))
}
