//! Shared HTTP plumbing: the default client, URL joining under a configurable prefix,
//! timeouts, and lenient JSON accessors.

use std::time::Duration;

use bytes::Bytes;
use mtp_core::Destination;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use crate::error::ProviderError;

/// Sent on every request so that service operators can tell our traffic apart.
pub const USER_AGENT: &str = concat!("mtp-desktop/", env!("CARGO_PKG_VERSION"));

/// mapillary_tools' connect timeout (PROTOCOLS §2.3); used for every service.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Minimum time we give a server to answer, once connected.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Total budget for a small (metadata) request: connect plus read.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Slowest average transfer rate we tolerate before calling an upload stalled
/// (mapillary_tools: read timeout `max(60 s, remaining ÷ 50 KiB/s)`).
pub const MIN_TRANSFER_BYTES_PER_SEC: u64 = 50 * 1024;

/// Builds the client used when the caller does not inject one: our `User-Agent`, a 60 s
/// connect timeout and a [`REQUEST_TIMEOUT`] total for metadata calls. Uploads override
/// the total with [`transfer_timeout`] of their size. An injected client's own timeout
/// applies to metadata calls, so give it one.
///
/// No client-wide read timeout on purpose: reqwest 0.12 arms `read_timeout` when the
/// request starts and keeps it armed while the body is still being sent, so a 60 s read
/// timeout would cut every upload longer than a minute.
pub fn build_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(30))
        .build()
}

/// Total timeout for a request that sends or receives `bytes`: connect, plus the longer of
/// [`READ_TIMEOUT`] and the time the bytes take at [`MIN_TRANSFER_BYTES_PER_SEC`].
pub fn transfer_timeout(bytes: u64) -> Duration {
    let transfer = Duration::from_secs(bytes.div_ceil(MIN_TRANSFER_BYTES_PER_SEC));
    CONNECT_TIMEOUT + transfer.max(READ_TIMEOUT)
}

/// Appends path segments to a configured base URL, keeping its own path, so that a service
/// served under a prefix (`http://127.0.0.1:PORT/mapillary/graph`) works like one at a host
/// root. A trailing `""` segment yields a trailing slash, which KartaView v1 and MTPW need.
pub(crate) fn endpoint(
    service: Destination,
    base: &Url,
    segments: &[&str],
) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut path = url.path_segments_mut().map_err(|()| {
            ProviderError::invalid(service, format!("{base} cannot be used as a base URL"))
        })?;
        path.pop_if_empty();
        path.extend(segments);
    }
    Ok(url)
}

/// A reply read in full.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends a request and reads the whole reply; transport failures become retryable errors.
pub(crate) async fn send(
    service: Destination,
    request: reqwest::RequestBuilder,
) -> Result<Reply, ProviderError> {
    let response = request
        .send()
        .await
        .map_err(|e| ProviderError::network(service, &e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| ProviderError::network(service, &e))?;
    tracing::debug!(
        service = service.as_str(),
        status = status.as_u16(),
        bytes = body.len(),
        "reply"
    );
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// An integer that may come as a number or a string of digits.
pub(crate) fn flex_i64(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A finite number that may come as a number or a string.
pub(crate) fn flex_f64(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

pub(crate) fn flex_u64(value: Option<&Value>) -> Option<u64> {
    flex_i64(value).and_then(|n| u64::try_from(n).ok())
}

/// A boolean that may come as `true`, `"true"`, `1` or `"1"`.
pub(crate) fn flex_bool(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A non-empty string field.
pub(crate) fn str_field(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2022-08-16T16:42:46.123Z`).
pub(crate) fn rfc3339_utc(ms: mtp_core::clock::Millis) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The body as text, for error messages.
pub(crate) fn body_text(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body).trim().to_string();
    (!text.is_empty()).then_some(text)
}
