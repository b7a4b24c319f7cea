//! The bytes of one photo upload, without holding a large photo in memory.
//!
//! An [`UploadSource`] is a head in memory (for Mapillary, the original bytes up to its
//! rewritten EXIF segment; empty for a photo sent as it is) followed by the rest of a file
//! on disk, read as it is sent. It can be streamed from any offset (Mapillary resumes at
//! the server's), as often as needed.
//!
//! The file must still be the one the bytes were planned from (a Mapillary key is the MD5
//! of these exact bytes): it is stamped (size, modification time, and on Unix its inode)
//! when the source is made, and the stamp is checked when a stream opens it and again
//! once the stream has read it all. A file that changed makes a [`SourceError`] rather
//! than an upload of other bytes.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use mtp_core::Destination;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::ProviderError;

/// Size of the pieces a source is streamed in; also the progress granularity.
pub const UPLOAD_CHUNK: usize = 64 * 1024;

/// What a file looked like when its upload bytes were planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
    /// The inode on Unix: a file replaced by another one (an editor's save, a sync tool)
    /// has a new one even when its size and time were kept.
    pub inode: Option<u64>,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            Some(meta.ino())
        };
        #[cfg(not(unix))]
        let inode = None;
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// Why a source's bytes cannot be read as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The file is not the one the upload was planned from any more.
    Changed { path: PathBuf, detail: String },
    /// The file cannot be read.
    Unreadable { path: PathBuf, detail: String },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Changed { path, detail } => write!(
                f,
                "{} changed while it was being uploaded ({detail}): read the folder again",
                path.display()
            ),
            SourceError::Unreadable { path, detail } => {
                write!(f, "cannot read {}: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    /// As a provider error: permanent, since sending again would not help until the user
    /// reads the folder again.
    pub fn into_provider(self, service: Destination) -> ProviderError {
        ProviderError::invalid(service, self.to_string())
    }

    fn unreadable(path: &Path, e: &io::Error) -> SourceError {
        SourceError::Unreadable {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }
}

/// The part of a source read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileTail {
    path: PathBuf,
    offset: u64,
    stamp: FileStamp,
}

impl FileTail {
    fn len(&self) -> u64 {
        self.stamp.len.saturating_sub(self.offset)
    }

    fn check(&self, now: FileStamp) -> Result<(), SourceError> {
        if now == self.stamp {
            return Ok(());
        }
        let detail = if now.len != self.stamp.len {
            format!("{} bytes, was {}", now.len, self.stamp.len)
        } else if now.inode != self.stamp.inode {
            "replaced by another file".to_string()
        } else {
            "modified".to_string()
        };
        Err(SourceError::Changed {
            path: self.path.clone(),
            detail,
        })
    }
}

/// One upload's bytes: `head` from memory, then a file from an offset to its end.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UploadSource {
    head: Bytes,
    tail: Option<FileTail>,
}

impl fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UploadSource");
        d.field("head_len", &self.head.len());
        if let Some(t) = &self.tail {
            d.field("path", &t.path)
                .field("tail_offset", &t.offset)
                .field("tail_len", &t.len());
        }
        d.field("len", &self.len()).finish()
    }
}

impl From<Bytes> for UploadSource {
    fn from(bytes: Bytes) -> Self {
        UploadSource::in_memory(bytes)
    }
}

impl From<Vec<u8>> for UploadSource {
    fn from(bytes: Vec<u8>) -> Self {
        UploadSource::in_memory(Bytes::from(bytes))
    }
}

impl UploadSource {
    /// Bytes already in memory (small photos, manifests).
    pub fn in_memory(bytes: Bytes) -> UploadSource {
        UploadSource {
            head: bytes,
            tail: None,
        }
    }

    /// `head`, then the file at `path` from `tail_offset` to its end, the file being as
    /// `stamp` says (take it before reading anything the head was made from).
    pub fn file(head: Bytes, path: PathBuf, tail_offset: u64, stamp: FileStamp) -> UploadSource {
        UploadSource {
            head,
            tail: Some(FileTail {
                path,
                offset: tail_offset.min(stamp.len),
                stamp,
            }),
        }
    }

    /// A whole file sent as it is, stamped now.
    pub fn whole_file(path: PathBuf) -> Result<UploadSource, SourceError> {
        let meta = std::fs::metadata(&path).map_err(|e| SourceError::unreadable(&path, &e))?;
        Ok(UploadSource::file(
            Bytes::new(),
            path,
            0,
            FileStamp::of(&meta),
        ))
    }

    /// The number of bytes sent.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.tail.as_ref().map_or(0, FileTail::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any of the bytes come from disk.
    pub fn is_streamed(&self) -> bool {
        self.tail.is_some()
    }

    /// Reads every byte in order, handing them to `each` (on the calling thread: for
    /// hashing, off the async threads). Fails if the file is not as stamped, before or
    /// after.
    pub fn read_all_blocking(&self, mut each: impl FnMut(&[u8])) -> Result<(), SourceError> {
        each(&self.head);
        let Some(tail) = &self.tail else {
            return Ok(());
        };
        let unreadable = |e: io::Error| SourceError::unreadable(&tail.path, &e);
        let mut file = std::fs::File::open(&tail.path).map_err(unreadable)?;
        tail.check(FileStamp::of(&file.metadata().map_err(unreadable)?))?;
        file.seek(SeekFrom::Start(tail.offset))
            .map_err(unreadable)?;
        let mut buf = vec![0u8; 4 * UPLOAD_CHUNK];
        let mut left = tail.len();
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let n = file.read(&mut buf[..want]).map_err(unreadable)?;
            if n == 0 {
                break;
            }
            each(&buf[..n]);
            left -= n as u64;
        }
        // A file cut short while read, or written to: both show in its stamp.
        tail.check(FileStamp::of(&file.metadata().map_err(unreadable)?))?;
        if left > 0 {
            return Err(SourceError::Changed {
                path: tail.path.clone(),
                detail: "it ended early".to_string(),
            });
        }
        Ok(())
    }

    /// The bytes from `offset` on, in pieces of at most [`UPLOAD_CHUNK`], and a watch that
    /// tells, once the stream failed, whether it was the file (a changed file makes the
    /// stream fail rather than send other bytes; the request then fails with an I/O error
    /// that says less than the watch). The file is opened and checked here, before
    /// anything is sent.
    pub async fn stream_from(
        &self,
        offset: u64,
    ) -> Result<(BoxStream<'static, io::Result<Bytes>>, SourceWatch), SourceError> {
        let watch = SourceWatch::default();
        let head_at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.head.len());
        let head = self.head.slice(head_at..);
        let head_chunks = (0..head.len().div_ceil(UPLOAD_CHUNK)).map(move |i| {
            let end = ((i + 1) * UPLOAD_CHUNK).min(head.len());
            Ok(head.slice(i * UPLOAD_CHUNK..end))
        });
        let head_stream = futures::stream::iter(head_chunks);
        let Some(tail) = self.tail.clone() else {
            return Ok((head_stream.boxed(), watch));
        };
        let skip = offset
            .saturating_sub(self.head.len() as u64)
            .min(tail.len());
        let unreadable = |e: io::Error| SourceError::unreadable(&tail.path, &e);
        let mut file = tokio::fs::File::open(&tail.path)
            .await
            .map_err(unreadable)?;
        tail.check(FileStamp::of(&file.metadata().await.map_err(unreadable)?))?;
        file.seek(SeekFrom::Start(tail.offset + skip))
            .await
            .map_err(unreadable)?;
        let reader = TailReader {
            left: tail.len() - skip,
            file,
            tail,
            done: false,
            watch: watch.clone(),
        };
        let tail_stream = futures::stream::unfold(reader, |mut r| async move {
            let next = r.next().await?;
            Some((next, r))
        });
        Ok((head_stream.chain(tail_stream).boxed(), watch))
    }
}

/// What went wrong with a source's file while it was streamed, if anything.
#[derive(Debug, Clone, Default)]
pub struct SourceWatch(Arc<Mutex<Option<SourceError>>>);

impl SourceWatch {
    pub fn problem(&self) -> Option<SourceError> {
        self.0.lock().ok().and_then(|p| p.clone())
    }

    fn report(&self, e: SourceError) -> io::Error {
        let error = io::Error::other(e.to_string());
        if let Ok(mut p) = self.0.lock() {
            p.get_or_insert(e);
        }
        error
    }
}

struct TailReader {
    file: tokio::fs::File,
    tail: FileTail,
    left: u64,
    done: bool,
    watch: SourceWatch,
}

impl TailReader {
    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        if self.done {
            return None;
        }
        match self.read().await {
            Ok(Some(chunk)) => Some(Ok(chunk)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(self.watch.report(e)))
            }
        }
    }

    async fn read(&mut self) -> Result<Option<Bytes>, SourceError> {
        let unreadable = |e: io::Error| SourceError::unreadable(&self.tail.path, &e);
        if self.left == 0 {
            // The last check: the bytes just sent are the planned ones only if nothing
            // wrote to the file meanwhile. Failing here, before the body ends, keeps the
            // server from taking them as a complete upload.
            let meta = self.file.metadata().await.map_err(unreadable)?;
            self.tail.check(FileStamp::of(&meta))?;
            return Ok(None);
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(UPLOAD_CHUNK);
        let mut buf = BytesMut::with_capacity(want);
        while buf.len() < want {
            let n = (&mut self.file)
                .take((want - buf.len()) as u64)
                .read_buf(&mut buf)
                .await
                .map_err(unreadable)?;
            if n == 0 {
                return Err(SourceError::Changed {
                    path: self.tail.path.clone(),
                    detail: "it ended early".to_string(),
                });
            }
        }
        self.left -= buf.len() as u64;
        Ok(Some(buf.freeze()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn data(n: usize) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect()
    }

    async fn collect(source: &UploadSource, offset: u64) -> Result<Vec<u8>, io::Error> {
        let (stream, _) = source.stream_from(offset).await.unwrap();
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(chunks.concat())
    }

    fn source_for(dir: &Path, file: &[u8], head: &[u8], tail_offset: u64) -> UploadSource {
        let path = dir.join("p.jpg");
        std::fs::write(&path, file).unwrap();
        let stamp = FileStamp::of(&std::fs::metadata(&path).unwrap());
        UploadSource::file(Bytes::copy_from_slice(head), path, tail_offset, stamp)
    }

    #[tokio::test]
    async fn streams_head_then_tail_from_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        let file = data(300_000);
        let head = b"HEAD-rewritten".repeat(10_000);
        let source = source_for(dir.path(), &file, &head, 1_000);
        let mut expected = head.clone();
        expected.extend_from_slice(&file[1_000..]);
        assert_eq!(source.len(), expected.len() as u64);
        for offset in [0, 5, head.len() - 1, head.len(), head.len() + 70_000] {
            let got = collect(&source, offset as u64).await.unwrap();
            assert_eq!(got, &expected[offset..], "from {offset}");
        }
        assert!(collect(&source, source.len()).await.unwrap().is_empty());
        let mut hashed = Vec::new();
        source
            .read_all_blocking(|b| hashed.extend_from_slice(b))
            .unwrap();
        assert_eq!(hashed, expected);
        let memory = UploadSource::from(expected.clone());
        assert_eq!(collect(&memory, 7).await.unwrap(), &expected[7..]);
    }

    #[tokio::test]
    async fn a_changed_file_is_caught_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let file = data(200_000);
        let source = source_for(dir.path(), &file, b"head", 10);
        let path = dir.path().join("p.jpg");

        // Changed before the stream opens it: a different size.
        std::fs::write(&path, &file[..150_000]).unwrap();
        let e = source.stream_from(0).await.err().unwrap();
        assert!(matches!(e, SourceError::Changed { .. }), "{e}");
        assert!(e.to_string().contains("150000 bytes, was 200000"), "{e}");
        let e = source.read_all_blocking(|_| {}).unwrap_err();
        assert!(matches!(e, SourceError::Changed { .. }), "{e}");

        // Changed while streaming: the stream fails before it ends, and the watch says why.
        std::fs::write(&path, &file).unwrap();
        let stamp = FileStamp::of(&std::fs::metadata(&path).unwrap());
        let source = UploadSource::file(Bytes::from_static(b"head"), path.clone(), 10, stamp);
        let (mut stream, watch) = source.stream_from(0).await.unwrap();
        let _head = stream.next().await.unwrap().unwrap();
        let _first = stream.next().await.unwrap().unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100_000)
            .unwrap();
        let rest: Result<Vec<Bytes>, _> = stream.try_collect().await;
        assert!(rest.is_err());
        assert!(
            matches!(watch.problem(), Some(SourceError::Changed { .. })),
            "{:?}",
            watch.problem()
        );

        // Gone.
        std::fs::remove_file(&path).unwrap();
        let e = source.stream_from(0).await.err().unwrap();
        assert!(matches!(e, SourceError::Unreadable { .. }), "{e}");
    }

    #[tokio::test]
    async fn rewritten_in_place_with_the_same_size_is_caught_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = data(200_000);
        let source = source_for(dir.path(), &file, b"", 0);
        let path = dir.path().join("p.jpg");
        let (mut stream, watch) = source.stream_from(0).await.unwrap();
        let _first = stream.next().await.unwrap().unwrap();
        // Same size, new bytes, a later time.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, &data(10)).unwrap();
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        drop(f);
        let rest: Result<Vec<Bytes>, _> = stream.try_collect().await;
        assert!(
            rest.is_err(),
            "the last piece is never followed by a clean end"
        );
        assert!(matches!(watch.problem(), Some(SourceError::Changed { .. })));
    }
}
