//! Request bodies: the recording/cutting stream every handler reads through, and form parsing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::HeaderMap;
use futures::{Stream, StreamExt as _};
use md5::{Digest as _, Md5};

use crate::record::ReqCtx;
use crate::state::lock;

/// Bodies of these types are kept (up to this size) so the recorder can list their fields.
const RECORD_BUFFER_LIMIT: usize = 64 * 1024 * 1024;

/// The largest body a handler buffers (photos, zips, manifests).
pub(crate) const MAX_BODY: usize = 1024 * 1024 * 1024;

pub(crate) struct BodyState {
    pub inner: Option<BodyDataStream>,
    pub len: u64,
    pub md5: Md5,
    pub buffer: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub cut_after: Option<u64>,
    pub cut: bool,
    pub ended: bool,
    pub error: bool,
    reported_error: bool,
    /// The statistics above were copied into the request's record.
    pub recorded: bool,
}

impl BodyState {
    pub fn new(content_type: Option<String>) -> BodyState {
        let keep = content_type.as_deref().is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json")
                || ct.starts_with("application/x-www-form-urlencoded")
                || ct.starts_with("multipart/form-data")
        });
        BodyState {
            inner: None,
            len: 0,
            md5: Md5::new(),
            buffer: keep.then(Vec::new),
            recorded: false,
            content_type,
            cut_after: None,
            cut: false,
            ended: false,
            error: false,
            reported_error: false,
        }
    }
}

fn cut_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection cut by a sandbox fault",
    )
}

/// The body the handlers see: it reads the real body through the request's record (length,
/// md5, a copy of form bodies) and ends in an error at an injected cut. The real body stays
/// in the record, so whatever a handler leaves unread is drained after it returns.
pub(crate) struct SharedBody(pub Arc<ReqCtx>);

impl Stream for SharedBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut b = lock(&self.0.body);
        if b.cut || b.error {
            if b.reported_error {
                return Poll::Ready(None);
            }
            b.reported_error = true;
            return Poll::Ready(Some(Err(cut_error())));
        }
        if b.cut_after.is_some_and(|limit| b.len >= limit) {
            b.cut = true;
            b.reported_error = true;
            return Poll::Ready(Some(Err(cut_error())));
        }
        let Some(inner) = b.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(mut chunk))) => {
                if let Some(limit) = b.cut_after {
                    let room = usize::try_from(limit - b.len).unwrap_or(usize::MAX);
                    if chunk.len() > room {
                        chunk.truncate(room);
                    }
                }
                b.len += chunk.len() as u64;
                b.md5.update(&chunk);
                let over = match b.buffer.as_mut() {
                    Some(buf) if buf.len() + chunk.len() <= RECORD_BUFFER_LIMIT => {
                        buf.extend_from_slice(&chunk);
                        false
                    }
                    Some(_) => true,
                    None => false,
                };
                if over {
                    b.buffer = None;
                }
                if chunk.is_empty() && b.cut_after.is_some_and(|limit| b.len >= limit) {
                    b.cut = true;
                    b.reported_error = true;
                    return Poll::Ready(Some(Err(cut_error())));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                b.error = true;
                b.reported_error = true;
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(None) => {
                b.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `body`, handed over at most `bytes_per_sec` fast: each chunk is read from the connection
/// only once the previous ones have "arrived" at that rate, so what the client could not
/// send yet stays on its side (as on a slow link) and a client that dies mid-way leaves a
/// partial body.
pub(crate) fn throttled(body: Body, bytes_per_sec: u64) -> Body {
    let rate = bytes_per_sec.max(1) as f64;
    let stream = futures::stream::unfold(
        (body.into_data_stream(), None::<tokio::time::Instant>),
        move |(mut inner, not_before)| async move {
            if let Some(at) = not_before {
                tokio::time::sleep_until(at).await;
            }
            let chunk = inner.next().await?;
            let next = chunk.as_ref().ok().map(|c| {
                tokio::time::Instant::now()
                    + std::time::Duration::from_secs_f64(c.len() as f64 / rate)
            });
            Some((chunk, (inner, next)))
        },
    );
    Body::from_stream(stream)
}

/// `body`, handed over through a link shared with other requests: each chunk books its
/// time on the link, and the next one is read from the connection only once it has crossed
/// (see [`crate::faults::SharedLink`]).
pub(crate) fn over_link(body: Body, link: Arc<crate::faults::SharedLink>) -> Body {
    let stream = futures::stream::unfold(
        (body.into_data_stream(), None::<tokio::time::Instant>),
        move |(mut inner, not_before)| {
            let link = link.clone();
            async move {
                if let Some(at) = not_before {
                    tokio::time::sleep_until(at).await;
                }
                let chunk = inner.next().await?;
                let next = chunk.as_ref().ok().map(|c| link.book(c.len()));
                Some((chunk, (inner, next)))
            }
        },
    );
    Body::from_stream(stream)
}

/// Reads whatever the handler left unread (stops at an injected cut).
pub(crate) async fn drain(ctx: Arc<ReqCtx>) {
    let mut s = SharedBody(ctx);
    while let Some(Ok(_)) = s.next().await {}
}

/// Reads a whole body.
pub(crate) async fn read_all(body: Body) -> Result<Bytes, axum::Error> {
    axum::body::to_bytes(body, MAX_BODY).await
}

/// One file of a multipart body.
#[derive(Clone, Debug)]
pub(crate) struct FilePart {
    pub field: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// The fields of a URL-encoded or multipart body.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParsedForm {
    pub fields: Vec<(String, String)>,
    pub files: Vec<FilePart>,
}

#[derive(Debug)]
pub(crate) enum FormError {
    /// Neither `application/x-www-form-urlencoded` nor `multipart/form-data`.
    UnsupportedType,
    /// The body could not be read or parsed.
    Malformed(String),
}

impl ParsedForm {
    /// Parses a body of the given content type.
    pub async fn parse(content_type: &str, bytes: Bytes) -> Result<ParsedForm, FormError> {
        let lower = content_type.to_ascii_lowercase();
        if lower.starts_with("application/x-www-form-urlencoded") {
            return Ok(ParsedForm {
                fields: url::form_urlencoded::parse(&bytes).into_owned().collect(),
                files: Vec::new(),
            });
        }
        if !lower.starts_with("multipart/form-data") {
            return Err(FormError::UnsupportedType);
        }
        let boundary = multer::parse_boundary(content_type)
            .map_err(|e| FormError::Malformed(e.to_string()))?;
        let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        let mut mp = multer::Multipart::new(stream, boundary);
        let mut form = ParsedForm::default();
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(FormError::Malformed(e.to_string())),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let filename = field.file_name().map(str::to_owned);
            let ct = field.content_type().map(|m| m.to_string());
            let data = field
                .bytes()
                .await
                .map_err(|e| FormError::Malformed(e.to_string()))?;
            match filename {
                Some(_) => form.files.push(FilePart {
                    field: name,
                    filename,
                    content_type: ct,
                    data,
                }),
                None => form
                    .fields
                    .push((name, String::from_utf8_lossy(&data).into_owned())),
            }
        }
        Ok(form)
    }

    /// Reads and parses a request body as a form.
    pub async fn from_request(headers: &HeaderMap, body: Body) -> Result<ParsedForm, FormError> {
        let ct = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = read_all(body)
            .await
            .map_err(|e| FormError::Malformed(e.to_string()))?;
        if ct.is_empty() && bytes.is_empty() {
            return Ok(ParsedForm::default());
        }
        ParsedForm::parse(&ct, bytes).await
    }

    /// The first value of a text field; empty values count as missing.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn file(&self, name: &str) -> Option<&FilePart> {
        self.files.iter().find(|f| f.field == name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::faults::SharedLink;

    #[tokio::test(start_paused = true)]
    async fn bodies_over_one_link_share_its_rate() {
        let link = Arc::new(SharedLink::new(1_000));
        let body = || over_link(Body::from(vec![0_u8; 1_000]), link.clone());
        let t0 = tokio::time::Instant::now();
        let (a, b) = tokio::join!(read_all(body()), read_all(body()));
        assert_eq!((a.unwrap().len(), b.unwrap().len()), (1_000, 1_000));
        // 2,000 bytes at 1,000 B/s together: 2 s (each alone, throttled, would take 1 s).
        assert_eq!(t0.elapsed(), std::time::Duration::from_secs(2));
        // An idle link saves no credit: a body after a pause still takes its full time.
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        let t1 = tokio::time::Instant::now();
        read_all(body()).await.unwrap();
        assert_eq!(t1.elapsed(), std::time::Duration::from_secs(1));
    }
}
